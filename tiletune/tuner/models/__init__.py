"""Cost models (XGBoost, NumPy MLP, Lasso, deep-kernel GP) and the features they learn on."""
