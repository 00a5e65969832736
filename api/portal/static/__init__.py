"""The portal's browser assets (CSS and ES modules), shipped as package data."""
