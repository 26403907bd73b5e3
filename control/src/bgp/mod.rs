//! BGP in the control process (issue 9): the speaker runtime over the
//! protocol cores of `patronus-bgp`.

pub mod speaker;
