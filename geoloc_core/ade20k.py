"""The 150 ADE20K scene-parsing classes, 0-based in the order used by the transformers
SegFormer/Mask2Former ADE20K checkpoints, so demo labels and real model outputs share ids.

ADE20K-150 has no "snow" class: a snowy roof is still building, a snowy lawn still grass.
"""

from __future__ import annotations

ADE20K_CLASSES: tuple[str, ...] = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane",
    "grass", "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant",
    "curtain", "chair", "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror",
    "rug", "field", "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub",
    "railing", "cushion", "base", "box", "column", "signboard", "chest of drawers", "counter",
    "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path", "stairs",
    "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
    "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench",
    "countertop", "stove", "palm", "kitchen island", "computer", "swivel chair", "boat", "bar",
    "arcade machine", "hovel", "bus", "towel", "light", "truck", "tower", "chandelier",
    "awning", "streetlight", "booth", "television receiver", "airplane", "dirt track",
    "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet",
    "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer",
    "plaything", "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag",
    "minibike", "cradle", "oven", "ball", "food", "step", "tank", "trade name", "microwave",
    "pot", "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture", "hood",
    "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate",
    "monitor", "bulletin board", "shower", "radiator", "glass", "clock", "flag",
)

NUM_CLASSES = 150

_CLASS_IDS: dict[str, int] = {name: index for index, name in enumerate(ADE20K_CLASSES)}

assert len(ADE20K_CLASSES) == NUM_CLASSES == len(_CLASS_IDS)


def class_id(name: str) -> int:
    """Id of a class by its ADE20K name; code refers to classes by name so ids never drift."""
    try:
        return _CLASS_IDS[name]
    except KeyError:
        raise KeyError(
            f"unknown ADE20K class {name!r}; see geoloc_core.ade20k.ADE20K_CLASSES"
        ) from None
