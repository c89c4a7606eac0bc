"""streamrec cli."""
