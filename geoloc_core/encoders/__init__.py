"""Encoders: image and text towers through open_clip's factory, and the GPS encoder."""
