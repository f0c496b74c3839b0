//! Intake: how department data comes in.
//!
//! A department dataset is declared by a mapping file (`mapping`); its file is streamed record by
//! record (`reader`), each record cleaned through the standards library into standard fields and
//! a list of issues (`clean`), and the result stored as versioned records or held in quarantine
//! (`pipeline`, through the store trait). `reclean` cleans stored records again when the rules
//! or a mapping improve. `quality` turns stored records into the scorecard the
//! data bureau sends back to the department.
//!
//! Intake does not link records to one another (resolution does) and never writes SQL.

pub mod clean;
pub mod mapping;
pub mod pipeline;
pub mod quality;
pub mod reader;
pub mod reclean;
