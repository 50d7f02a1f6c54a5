"""The dataset on disk: image files via temp name and rename, the manifest, labels, the report."""
