"""The predict path: photos -> ranked candidates with place names and the decision.

photos.py (what to read), settings.py and files.py (what it reads, and the error when it is
not built yet), embed.py (a photo embedded like the caches' images), predictor.py (the
artifacts loaded once, and the inference chain of geoloc_core/inference run over photos),
ranking.py (the chain's candidates ranked and named), same_place.py (one entry per place, its
views counted), far_warning.py (the warning for a photo far from everything the model knows),
places.py (place names), results.py (the JSON shape), render.py and map.py (the command's text
and picture), command.py (`geoloc predict`). Importing this package is light: torch and FAISS
load with predictor.py (open_clip only for towers vit_tower.py does not rebuild).
"""
