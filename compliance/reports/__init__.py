"""Reports read what the store keeps and never judge: the overview's aggregates, the shapes to draw
over a photo, the two pipelines side by side, and the verdict table as CSV or XLSX."""
