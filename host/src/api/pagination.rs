//! Cursor pagination: `?after=<id>&limit=` in, `{ "items": [...], "next": <id or null> }`
//! out. Ids are UUIDv7, ordered by creation, so the last id of a page is the next cursor.

use serde::{Deserialize, Serialize};

use super::ApiError;
use crate::pipeline::store::{Page, StoreResult};

/// Items per page when the caller does not say.
pub const DEFAULT_LIMIT: u32 = 50;

/// Most items one page may hold.
pub const MAX_LIMIT: u32 = 200;

/// The query parameters of every list.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The `next` value of the previous page; omit for the first page.
    pub after: Option<String>,
    /// Items per page, 1 to 200; 50 when omitted.
    pub limit: Option<u32>,
}

impl PageQuery {
    pub fn page(&self) -> Result<Page, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(ApiError::bad_request(format!(
                "limit is {limit}, but must be 1 to {MAX_LIMIT}; follow `next` for more items"
            )));
        }
        Ok(Page {
            after: self.after.clone().filter(|a| !a.is_empty()),
            limit,
        })
    }
}

/// One page of a list.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Paged<T> {
    pub items: Vec<T>,
    /// Pass as `after` to get the next page; null on the last page.
    pub next: Option<String>,
}

/// One page of the items that `keep` accepts, read from the store batch by batch so that
/// a filtered page is as full as an unfiltered one. `next` is set only when more exist.
pub async fn page_of<T, Fut>(
    page: &Page,
    fetch: impl Fn(Page) -> Fut,
    id: impl Fn(&T) -> String,
    keep: impl Fn(&T) -> bool,
) -> Result<Paged<T>, ApiError>
where
    Fut: Future<Output = StoreResult<Vec<T>>>,
{
    let wanted = page.limit as usize;
    let batch_size = page.limit + 1;
    let mut items: Vec<T> = Vec::with_capacity(wanted);
    let mut cursor = page.after.clone();
    loop {
        let batch = fetch(Page {
            after: cursor.clone(),
            limit: batch_size,
        })
        .await?;
        let exhausted = batch.len() < batch_size as usize;
        for item in batch {
            cursor = Some(id(&item));
            if !keep(&item) {
                continue;
            }
            if items.len() == wanted {
                // One more exists, so the last kept item is a real cursor.
                let next = items.last().map(&id);
                return Ok(Paged { items, next });
            }
            items.push(item);
        }
        if exhausted {
            return Ok(Paged { items, next: None });
        }
    }
}
