//! The Marathon app definition.
