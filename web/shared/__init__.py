"""What the pages of every area use: French labels of codes, dates in Paris time, error pages."""
