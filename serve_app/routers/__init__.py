"""One router per resource; ``serve_app.api.build_app`` includes them all."""
