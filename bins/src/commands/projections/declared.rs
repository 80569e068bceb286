//! Loads the projections a `--projections FILE` declares.

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Result};
use rillflow_adapters::projection::{Projection, SqlProjection};
use rillflow_core::projection::ProjectionFile;

use crate::cli::input;

/// Every projection of `path`, in file order. Errors name the file and line.
pub fn load(path: &Path) -> Result<Vec<Arc<dyn Projection>>> {
    let text = input::read_file(path, input::MAX_PROJECTIONS_FILE)
        .map_err(|e| anyhow!("projections file: {e}"))?;
    let file = ProjectionFile::parse(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(file
        .projections
        .into_iter()
        .map(|spec| Arc::new(SqlProjection::new(spec)) as Arc<dyn Projection>)
        .collect())
}

/// The projections of `path`, or only the one called `name`.
pub fn select(path: &Path, name: Option<&str>) -> Result<Vec<Arc<dyn Projection>>> {
    let all = load(path)?;
    let Some(name) = name else {
        return Ok(all);
    };
    let known: Vec<String> = all.iter().map(|p| p.name().to_owned()).collect();
    let chosen: Vec<_> = all.into_iter().filter(|p| p.name() == name).collect();
    if chosen.is_empty() {
        bail!(
            "{} declares no projection {name:?} (it declares: {})",
            path.display(),
            known.join(", ")
        );
    }
    Ok(chosen)
}
