"""Next-day air-pollution peak forecasting for Lille (synthetic data)."""
