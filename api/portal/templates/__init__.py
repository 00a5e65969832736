"""The portal's HTML templates (string.Template, values escaped by api.portal.render)."""
