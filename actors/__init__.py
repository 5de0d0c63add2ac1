"""The model layer: models, their long-running actors, pool sizing."""

NAMESPACE = "screenalytics"
"""The Ray namespace of every named, detached actor (model pools, facebanks, job actors): one place, so
a run, the Serve app and a batch job all find the same ones."""
