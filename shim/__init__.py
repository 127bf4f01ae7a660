"""ctxmigrate.shim"""
