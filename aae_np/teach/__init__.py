"""Teaching: the graded gradient exercises of notebook 02 and the aae-np gradcheck tour."""
