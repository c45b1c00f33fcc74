"""Place texts: offline reverse geocoding into MP16-Pro's place fields, captions from a
template, and optional LMM descriptions."""

from geoloc_core.text.table import PLACE_TEXT_COLUMNS, read_place_texts

__all__ = ["PLACE_TEXT_COLUMNS", "read_place_texts"]
