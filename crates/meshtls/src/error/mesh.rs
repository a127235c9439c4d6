/// An Istio mesh config that meshtls cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MeshConfigError {
    /// A ConfigMap manifest had no `data.mesh` key.
    #[error("configmap {name:?} has no data.mesh key")]
    MissingMeshKey {
        /// The ConfigMap's `metadata.name`.
        name: String,
    },
    /// A field held a value of the wrong type or outside its allowed set.
    #[error("invalid mesh config field {field}: {reason}")]
    Field {
        /// The field path, e.g. `trustDomainAliases[2]`.
        field: String,
        /// What was wrong.
        reason: String,
    },
}
