"""The service that receives Agora's notifications and runs the pipeline (the serve issue)."""
