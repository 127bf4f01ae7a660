"""The rewrite: planning (which findings become edits), import edits, and writing files.

``planning`` turns the ``rewrite`` findings of one analysed file into the new
text (the codemods' replacements, then the import edits); ``writing`` puts the
results on disk safely, or into a patch.
"""
