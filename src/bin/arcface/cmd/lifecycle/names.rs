//! Class names. The library's checkpoints record classes by index only, so
//! the program keeps the names `enrol --label-name` gives in the
//! checkpoint's extra metadata, under [`NAMES_KEY`]: a JSON object from class
//! index (a decimal string) to name, e.g. `{"10": "ada"}`. `retire --remove`
//! renumbers it with the classes.

use crate::CliError;
use arcface::Checkpoint;
use std::collections::BTreeMap;

/// The checkpoint metadata key of the names.
pub const NAMES_KEY: &str = "class_names";

/// The names of some classes, by index.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClassNames(BTreeMap<usize, String>);

impl ClassNames {
    /// The names stored in `ck` (read from `path`), none if it has none.
    pub fn from_checkpoint(ck: &Checkpoint, path: &str) -> Result<Self, CliError> {
        let Some(text) = ck.extra().get(NAMES_KEY) else {
            return Ok(Self::default());
        };
        let bad = || {
            CliError::input(
                path,
                format!("metadata {NAMES_KEY} is not an object from class index to name"),
            )
        };
        let raw: BTreeMap<String, String> = serde_json::from_str(text).map_err(|_| bad())?;
        let mut names = BTreeMap::new();
        for (k, v) in raw {
            names.insert(k.parse::<usize>().map_err(|_| bad())?, v);
        }
        Ok(Self(names))
    }

    /// The name of class `c`, if it has one.
    pub fn get(&self, c: usize) -> Option<&str> {
        self.0.get(&c).map(String::as_str)
    }

    /// Names class `c`.
    pub fn insert(&mut self, c: usize, name: &str) {
        self.0.insert(c, name.to_string());
    }

    /// The names after a removal: `map[old]` is the old class's new index
    /// (`None`: removed, and its name with it).
    pub fn remap(&self, map: &[Option<usize>]) -> Self {
        Self(
            self.0
                .iter()
                .filter_map(|(&c, n)| Some((map.get(c).copied().flatten()?, n.clone())))
                .collect(),
        )
    }

    /// Stores the names in `ck` (nothing when there are none and `ck` had
    /// none).
    pub fn store(&self, ck: &mut Checkpoint) {
        if self.0.is_empty() && !ck.extra().contains_key(NAMES_KEY) {
            return;
        }
        let obj: serde_json::Map<String, serde_json::Value> = self
            .0
            .iter()
            .map(|(c, n)| (c.to_string(), serde_json::Value::from(n.as_str())))
            .collect();
        ck.set_extra(NAMES_KEY, serde_json::Value::Object(obj).to_string());
    }

    /// `3 ("ada")` or `3`.
    pub fn show(&self, c: usize) -> String {
        match self.get(c) {
            Some(n) => format!("{c} ({n:?})"),
            None => c.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arcface::{ArcFaceHead, HeadConfig, WeightDtype};

    fn ck() -> Checkpoint {
        let head = ArcFaceHead::<f32>::new(HeadConfig::new(4, 2), 0).unwrap();
        Checkpoint::from_head(&head, WeightDtype::F32).unwrap()
    }

    #[test]
    fn names_round_trip_and_follow_a_removal() {
        let mut ck = ck();
        assert_eq!(
            ClassNames::from_checkpoint(&ck, "h").unwrap(),
            ClassNames::default()
        );
        ClassNames::default().store(&mut ck);
        assert!(!ck.extra().contains_key(NAMES_KEY));
        let mut n = ClassNames::default();
        n.insert(1, "ada");
        n.insert(3, "bo \"b\"");
        n.store(&mut ck);
        assert_eq!(ck.extra()[NAMES_KEY], r#"{"1":"ada","3":"bo \"b\""}"#);
        let back = ClassNames::from_checkpoint(&ck, "h").unwrap();
        assert_eq!(back, n);
        // class 1 removed, 3 becomes 2
        let moved = back.remap(&[Some(0), None, Some(1), Some(2)]);
        assert_eq!((moved.get(1), moved.get(2)), (None, Some("bo \"b\"")));
        assert_eq!(moved.show(2), r#"2 ("bo \"b\"")"#);
        ck.set_extra(NAMES_KEY, "[1, 2]");
        let e = ClassNames::from_checkpoint(&ck, "h")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "h: metadata class_names is not an object from class index to name"
        );
    }
}
