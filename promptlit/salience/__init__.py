"""salience."""
