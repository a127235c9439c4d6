//! Placeholder: this module is being built (see the project's issues).
