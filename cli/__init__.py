"""ctxmigrate.cli"""
