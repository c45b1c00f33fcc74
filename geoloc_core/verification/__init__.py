"""G3's geo-verification: the candidate whose GPS embedding best matches the image's."""
