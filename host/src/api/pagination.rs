//! Cursor pagination: `?after=<id>&limit=` in, `{ "items": [...], "next": <id or null> }`
//! out. Ids are UUIDv7, ordered by creation, so the last id of a page is the next cursor.

use serde::{Deserialize, Serialize};

use super::ApiError;
use crate::pipeline::operations::Listing;
pub use crate::pipeline::store::{DEFAULT_LIMIT, MAX_LIMIT};
use crate::pipeline::store::{Page, StoreResult};

/// The query parameters of every list.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The `next` value of the previous page; omit for the first page.
    pub after: Option<String>,
    /// Items per page, 1 to 200; 50 when omitted.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

impl PageQuery {
    pub fn page(&self) -> Result<Page, ApiError> {
        Page::asked(self.after.clone(), self.limit).map_err(ApiError::bad_request)
    }
}

/// One page of a list.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Paged<T> {
    pub items: Vec<T>,
    /// Pass as `after` to get the next page; null on the last page.
    pub next: Option<String>,
}

impl<T> From<Listing<T>> for Paged<T> {
    fn from(listing: Listing<T>) -> Paged<T> {
        Paged {
            items: listing.items,
            next: listing.next,
        }
    }
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
