//! Reading the case files' JSON (`tests/golden/FORMAT.md`): numbers that
//! may be the strings `"nan"`, `"inf"`, `"-inf"`; tensors as
//! `{"shape", "data"}`; failures as `"raises: ..."` strings.

use serde_json::Value;

/// A number, or a non-finite one written as a string, or a bool as 0/1.
pub fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().expect("number"),
        Value::String(s) => match s.as_str() {
            "nan" => f64::NAN,
            "inf" => f64::INFINITY,
            "-inf" => f64::NEG_INFINITY,
            other => panic!("not a number: {other}"),
        },
        Value::Bool(b) => *b as u8 as f64,
        other => panic!("not a number: {other}"),
    }
}

/// The upstream failure message, when `v` records one.
pub fn raises(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| s.starts_with("raises:"))
}

/// (shape, data) of a tensor object.
pub fn tensor(v: &Value) -> (Vec<usize>, Vec<f64>) {
    let shape = v["shape"]
        .as_array()
        .expect("shape")
        .iter()
        .map(|s| s.as_u64().unwrap() as usize)
        .collect();
    let data = v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(num)
        .collect();
    (shape, data)
}

/// A number, a tensor's data or a list of numbers, as a flat list.
pub fn list(v: &Value) -> Vec<f64> {
    if v.is_number() || v.is_string() {
        vec![num(v)]
    } else if v.get("data").is_some() {
        tensor(v).1
    } else {
        v.as_array().expect("list").iter().map(num).collect()
    }
}

/// Integer labels, as a tensor or a plain list.
pub fn labels_of(v: &Value) -> Vec<i64> {
    let data = if v.get("data").is_some() {
        &v["data"]
    } else {
        v
    };
    data.as_array()
        .expect("labels")
        .iter()
        .map(|x| x.as_i64().expect("int label"))
        .collect()
}
