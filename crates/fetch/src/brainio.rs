//! The BrainIO catalog (`lookup.csv`) of the files a manifest fetched, in the columns
//! BrainIO's own catalogs have, so that `kind = "brainio"` reads the folder as it reads
//! Brain-Score's.

use std::path::Path;

use crate::sources::Sources;
use crate::{FetchError, Result};

fn field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Write `<folder>/lookup.csv` listing every file of `sources` with a `[file.brainio]`
/// table that is present in `folder`, once per identifier (temp name, then rename).
/// Returns the number of rows, or `None` when the manifest has no BrainIO rows.
pub fn write_lookup(sources: &Sources, folder: &Path) -> Result<Option<usize>> {
    let mut rows = Vec::new();
    for f in &sources.files {
        let Some(b) = &f.brainio else { continue };
        if !folder.join(&f.path).is_file() {
            continue;
        }
        let location = f.url.clone().unwrap_or_else(|| f.path.clone());
        for id in &b.identifiers {
            rows.push(
                [
                    id.as_str(),
                    &b.lookup_type,
                    &b.class,
                    "S3",
                    &location,
                    f.hashes.sha1.as_deref().unwrap_or_default(),
                    b.stimulus_set_identifier.as_deref().unwrap_or_default(),
                ]
                .map(field)
                .join(","),
            );
        }
    }
    if !sources.files.iter().any(|f| f.brainio.is_some()) {
        return Ok(None);
    }
    let mut text = String::from(
        "identifier,lookup_type,class,location_type,location,sha1,stimulus_set_identifier\n",
    );
    for r in &rows {
        text.push_str(r);
        text.push('\n');
    }
    let path = folder.join("lookup.csv");
    let tmp = folder.join(".lookup.csv.tmp");
    std::fs::write(&tmp, text).map_err(|e| FetchError::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| FetchError::io(&path, e))?;
    Ok(Some(rows.len()))
}
