"""Gold: the weekly print feature table, rebuilt week by week."""
