//! Direct preference optimisation: HH-RLHF and Orca-DPO pairs, DPO's sigmoid loss against the
//! same model with its adapter switched off as the reference policy.
pub mod data;
pub mod task;
