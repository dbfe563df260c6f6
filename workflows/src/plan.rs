//! Planning: which jobs of which workflows run for an event, in `needs` stages, with matrix legs.
