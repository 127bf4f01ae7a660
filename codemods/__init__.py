"""ctxmigrate.codemods"""
