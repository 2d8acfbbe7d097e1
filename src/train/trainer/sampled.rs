//! The trainer's PartialFC path ([`crate::TrainConfig::sample_rate`] < 1):
//! one sampled step per batch, and the flush that brings every row up to
//! date before the head is read.

use super::Trainer;
use crate::error::{Error, Result};
use crate::head::Batch;
use crate::partial_fc::{PartialFc, SampledStep};
use crate::real::Real;

impl<T: Real> Trainer<T> {
    /// Makes the sampler for batches of up to `cap` samples when sampling
    /// (and none is there yet for that many).
    pub(super) fn prepare_sampling(&mut self, cap: usize) -> Result<()> {
        let rate = self.cfg.sample_rate;
        if rate >= 1.0 {
            self.pfc = None;
            return Ok(());
        }
        let fits = self
            .pfc
            .as_ref()
            .is_some_and(|p| p.sample_rate() == rate && p.capacity() >= cap);
        if !fits {
            self.flush_sampled()?;
            self.pfc = Some(PartialFc::new(&self.head, rate, cap, self.cfg.seed)?);
        }
        Ok(())
    }

    /// One sampled step on the gathered batch of `m` samples at `lr`: a
    /// loss or update that is not finite is [`Error::Diverged`] at
    /// (`epoch`, `step`), with the head's dense state as it was.
    pub(super) fn sampled_step(
        &mut self,
        m: usize,
        lr: f64,
        epoch: usize,
        step: usize,
    ) -> Result<(f64, SampledStep<T>)> {
        let d = self.head.config().in_channels;
        let batch = Batch::new(&self.batch_x[..m * d], &self.batch_y[..m]);
        let Some(pfc) = self.pfc.as_mut() else {
            unreachable!("sampled_step runs only with a sampler");
        };
        let diverged = |what, value| Error::Diverged {
            epoch,
            step,
            what,
            value,
        };
        let s = match pfc.step(&mut self.head, &mut self.opt, &batch, lr) {
            Ok(s) => s,
            Err(Error::Overflow { what, .. }) => return Err(diverged(what, f64::INFINITY)),
            Err(Error::NonFinite {
                what: "updated weight",
                ..
            }) => return Err(diverged("weight update", f64::INFINITY)),
            Err(e) => return Err(e),
        };
        let loss = s.loss.to_f64();
        if !loss.is_finite() {
            return Err(diverged("loss", loss));
        }
        Ok((loss, s))
    }

    /// Brings every row of the head and the optimiser state up to date.
    pub(super) fn flush_sampled(&mut self) -> Result<()> {
        match self.pfc.as_mut() {
            Some(p) => p.flush(&mut self.head, &mut self.opt),
            None => Ok(()),
        }
    }
}
