//! One value per backend type (matmul kernels, exact products, fused operations): generic model
//! code looks up what its backend `B` was given at start-up, and falls back where it was given
//! nothing.
use std::any::{Any, TypeId};
use std::sync::RwLock;

pub(crate) struct BackendRegistry(RwLock<Vec<(TypeId, Box<dyn Any + Send + Sync>)>>);

impl BackendRegistry {
    pub(crate) const fn new() -> Self {
        BackendRegistry(RwLock::new(Vec::new()))
    }

    /// Gives backend `B` `value` (replacing an earlier one).
    pub(crate) fn insert<B: 'static, V: Any + Send + Sync>(&self, value: V) {
        let mut all = self.0.write().unwrap_or_else(|e| e.into_inner());
        all.retain(|(id, _)| *id != TypeId::of::<B>());
        all.push((TypeId::of::<B>(), Box::new(value)));
    }

    pub(crate) fn remove<B: 'static>(&self) {
        self.0.write().unwrap_or_else(|e| e.into_inner()).retain(|(id, _)| *id != TypeId::of::<B>());
    }

    /// `B`'s value, if it was given one of type `V`.
    pub(crate) fn get<B: 'static, V: Any + Clone>(&self) -> Option<V> {
        let all = self.0.read().unwrap_or_else(|e| e.into_inner());
        all.iter().find(|(id, _)| *id == TypeId::of::<B>()).and_then(|(_, v)| v.downcast_ref::<V>().cloned())
    }
}
