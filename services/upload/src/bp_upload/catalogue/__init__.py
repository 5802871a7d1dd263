"""The dataset catalogue: its port, Firestore in the cloud and SQLite locally."""
