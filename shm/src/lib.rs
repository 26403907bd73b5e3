//! Shared-memory ABI between the control process and the engine (being built).
