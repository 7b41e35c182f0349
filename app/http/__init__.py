"""The headless HTTP server: health, readiness and metrics today; the control API later."""
