"""layers/nn"""
