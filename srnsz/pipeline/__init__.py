"""Policies above the predictors: quality and ratio targets."""
