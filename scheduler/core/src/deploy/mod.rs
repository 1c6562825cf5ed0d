//! Deployment planning, rolling restarts and launch backoff.
