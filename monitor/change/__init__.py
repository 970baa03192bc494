"""Change estimation: from two registered scans to a signed height-change map."""
