"""Raw episodes read, validated and chosen for a dataset, and adapted to what the writer takes."""
