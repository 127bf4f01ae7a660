"""The analysis: what a name refers to, and which files can hold a site.

Summaries (``ast``) feed the project index; the scope walk, the lookup and the
resolving pass (LibCST) find each module's references to legacy targets; the
site hints and the text pre-filter keep the expensive steps to the files that
need them; ``pipeline`` runs it all over a tree.
"""
