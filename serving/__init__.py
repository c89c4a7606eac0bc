"""streamrec serving."""
