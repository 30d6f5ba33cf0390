"""evenhand: the command line and `evenhand up` (the top floor, above api/ and worker/)."""
