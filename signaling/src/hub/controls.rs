//! What teachers control: removing someone from the class (and remembering whom, so they are
//! refused until readmitted).

use crate::protocol::RemovedPeer;

use super::class::Ban;
use super::Hub;

impl Hub {
    /// Records what identifies a member about to be removed, so it is refused until readmitted.
    pub(super) fn ban(&mut self, class_id: &str, peer: &str) {
        let Some(key) = self.peers.get(peer).map(|l| l.key) else {
            return;
        };
        let Some(class) = self.classes.get_mut(class_id) else {
            return;
        };
        let Some(m) = class.members.get(&key) else {
            return;
        };
        let ban = Ban {
            peer: RemovedPeer {
                id: m.info.id.clone(),
                name: m.info.name.clone(),
                role: m.info.role,
            },
            resume_token: m.resume_token.clone(),
            browser: m.browser.clone(),
            personal_token: m.personal_token.clone(),
        };
        class.removed.push(ban);
    }
}
