"""The manifest's column names, in a module with no imports so any layer can use them."""

MANIFEST_COLUMNS = ("id", "image", "lat", "lon", "split", "source")
PLACE_FIELDS = (
    "neighbourhood",
    "city",
    "county",
    "state",
    "region",
    "country",
    "country_code",
    "continent",
)
REFERENCE_SPLITS = ("reference", "validation")
DEMO_BENCHMARKS = ("demo-street", "demo-unseen")
# Columns read as text exactly as written: Namibia's code "NA" must not become a missing value.
TEXT_COLUMNS = ("id", "image", "split", "source", "label", *PLACE_FIELDS)
# Per-row problem an adapter found ("" when none, e.g. "no GPS position in EXIF"); the
# manifest gate turns it into a quarantine reason and never writes it to the manifest.
SOURCE_PROBLEM = "source_problem"
