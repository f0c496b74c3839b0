//! Identities on both store backends: departments and users are checked as they are added,
//! tokens are handed out once and kept only as hashes, and a token stops working when it is
//! revoked or expires.

mod common;

use std::sync::Arc;
use tongban_sharing::identity::{Identities, IdentityError, ManageError, Role};
use tongban_store::Store;

fn identity_error(e: ManageError) -> IdentityError {
    match e {
        ManageError::Identity(i) => i,
        ManageError::Store(s) => panic!("a store error: {s}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_get_tokens_that_work_until_revoked_or_expired() {
    let dir = tempfile::tempdir().unwrap();
    for store in common::backends(dir.path(), "identity").await {
        let store: Arc<dyn Store> = store.into();
        let ids = Identities::new(store.clone());
        ids.add_department("minzheng", "民政局", "320576")
            .await
            .unwrap();
        let err = ids
            .add_department("bad", "无名", "999999")
            .await
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(err.contains("division") && err.contains("999999"), "{err}");

        ids.add_user(
            "clerk01",
            "王芳",
            Some("minzheng"),
            Role::WindowClerk,
            "320576052",
        )
        .await
        .unwrap();
        // Wrong jurisdiction, missing or unknown department: refused, saying what.
        let e = identity_error(
            ids.add_user("x", "某", Some("minzheng"), Role::WindowClerk, "990000")
                .await
                .unwrap_err(),
        );
        assert!(matches!(&e, IdentityError::Invalid { field, .. } if field == "jurisdiction"));
        let e = identity_error(
            ids.add_user("x", "某", None, Role::CommunityWorker, "320576052001")
                .await
                .unwrap_err(),
        );
        assert!(matches!(&e, IdentityError::Invalid { field, .. } if field == "department"));
        let e = identity_error(
            ids.add_user(
                "x",
                "某",
                Some("gongan"),
                Role::DepartmentOfficial,
                "320576",
            )
            .await
            .unwrap_err(),
        );
        assert!(e.to_string().contains("gongan"), "{e}");

        let (row, token) = ids.issue_token("clerk01", None).await.unwrap();
        assert!(
            !row.secret_hash.contains(&token[16..]),
            "the secret is not stored"
        );
        let now = tongban_store::now_millis();
        let p = ids.authenticate(&token, now).await.unwrap();
        assert_eq!(
            (p.user_id.as_str(), p.role, p.jurisdiction.as_str()),
            ("clerk01", Role::WindowClerk, "320576052")
        );
        // Again, from the cache: the same answer.
        assert_eq!(ids.authenticate(&token, now).await.unwrap(), p);

        // A wrong secret for a real id, a malformed token, an unknown id.
        let forged = format!("{}{}", &token[..16], "0".repeat(48));
        assert!(matches!(
            identity_error(ids.authenticate(&forged, now).await.unwrap_err()),
            IdentityError::BadToken
        ));
        assert!(matches!(
            identity_error(ids.authenticate("Bearer nonsense", now).await.unwrap_err()),
            IdentityError::MalformedToken
        ));

        // Guessing at a token id: after five wrong secrets in a minute even the right one is
        // refused until the minute is over (Argon2 is not run for a blocked id).
        let (_, guessed) = ids.issue_token("clerk01", None).await.unwrap();
        let wrong = format!("{}{}", &guessed[..16], "1".repeat(48));
        for _ in 0..tongban_sharing::identity::MAX_FAILURES {
            assert!(ids.authenticate(&wrong, now).await.is_err());
        }
        assert!(ids.authenticate(&guessed, now).await.is_err(), "blocked");
        assert!(
            ids.authenticate(&guessed, now + 60_000).await.is_ok(),
            "a minute later"
        );

        // Expiry and revocation.
        let (_, short) = ids.issue_token("clerk01", Some(now + 1_000)).await.unwrap();
        assert!(ids.authenticate(&short, now).await.is_ok());
        assert!(matches!(
            identity_error(ids.authenticate(&short, now + 2_000).await.unwrap_err()),
            IdentityError::Expired
        ));
        // A token checked a moment ago is not read again, but its expiry still holds.
        let (_, brief) = ids.issue_token("clerk01", Some(now + 500)).await.unwrap();
        assert!(ids.authenticate(&brief, now).await.is_ok());
        assert!(matches!(
            identity_error(ids.authenticate(&brief, now + 600).await.unwrap_err()),
            IdentityError::Expired
        ));
        assert!(ids.revoke(&row.id).await.unwrap());
        assert!(!ids.revoke(&row.id).await.unwrap(), "already revoked");
        assert!(matches!(
            identity_error(ids.authenticate(&token, now).await.unwrap_err()),
            IdentityError::Revoked
        ));
        assert_eq!(store.tokens_of("clerk01").await.unwrap().len(), 4);
        // Tokens go only to users that exist.
        assert!(ids.issue_token("nobody", None).await.is_err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalogue_lists_libraries_and_every_registered_source() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string("mappings/synth/police_household.toml").unwrap();
    let mapping = tongban_intake::mapping::Mapping::parse(&text, "police_household.toml").unwrap();
    for store in common::backends(dir.path(), "catalogue").await {
        store
            .put_source(&tongban_intake::pipeline::source_row(&mapping, &text))
            .await
            .unwrap();
        let all = tongban_sharing::catalogue::catalogue(store.as_ref())
            .await
            .unwrap();
        let ids: Vec<&str> = all.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "library.person",
                "library.entity",
                "library.room",
                "library.building",
                "dataset.police_household"
            ]
        );
        let ds = &all[4];
        assert_eq!(ds.provider, mapping.source.department);
        assert_eq!(ds.fields.len(), mapping.fields.len());
        use tongban_sharing::catalogue::Class;
        assert_eq!(ds.field("ethnicity").unwrap().class, Class::Closed);
        assert_eq!(ds.field("citizen_id").unwrap().class, Class::Conditional);
        assert!(ds.last_update.is_none(), "nothing ingested yet");
        let ckan = tongban_sharing::catalogue::ckan(ds);
        assert_eq!(ckan["name"], "dataset-police-household");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_approved_by_its_provider_and_then_opens_the_field() {
    use tongban_sharing::policy::{
        Decision, Request, Subject, decide, decide_stored, request, revoke_stored,
    };
    let dir = tempfile::tempdir().unwrap();
    for store in common::backends(dir.path(), "grants").await {
        let store: Arc<dyn Store> = store.into();
        let ids = Identities::new(store.clone());
        ids.add_department("minzheng", "民政局", "320576")
            .await
            .unwrap();
        ids.add_department("bureau", "大数据局", "320576")
            .await
            .unwrap();
        ids.add_user(
            "clerk01",
            "王芳",
            Some("minzheng"),
            Role::WindowClerk,
            "320576052",
        )
        .await
        .unwrap();
        ids.add_user(
            "admin",
            "管理员",
            Some("bureau"),
            Role::DataBureauAdmin,
            "320576",
        )
        .await
        .unwrap();
        let (_, clerk_token) = ids.issue_token("clerk01", None).await.unwrap();
        let (_, admin_token) = ids.issue_token("admin", None).await.unwrap();
        let now = tongban_store::now_millis();
        let clerk = ids.authenticate(&clerk_token, now).await.unwrap();
        let admin = ids.authenticate(&admin_token, now).await.unwrap();
        let catalogue = tongban_sharing::catalogue::catalogue(store.as_ref())
            .await
            .unwrap();
        let person = catalogue.iter().find(|r| r.id == "library.person").unwrap();
        let subject = Subject {
            key: "P1",
            division: "320576052001",
            is_caller: false,
        };
        let ask = |fields: &[&str]| Request {
            resource: "library.person".into(),
            fields: fields.iter().map(|f| f.to_string()).collect(),
            purpose: "social_assistance.eligibility".into(),
            legal_basis: "社会救助暂行办法 第十一条".into(),
            scope: "320576052".into(),
            days: 30,
            daily_quota: 200,
        };
        // A closed field cannot even be asked for.
        assert!(
            request(store.as_ref(), &catalogue, &clerk, ask(&["ethnicity"]))
                .await
                .is_err()
        );
        let g = request(store.as_ref(), &catalogue, &clerk, ask(&["phone"]))
            .await
            .unwrap();
        let grants = |store: Arc<dyn Store>| async move {
            store
                .grants(None)
                .await
                .unwrap()
                .iter()
                .map(tongban_sharing::policy::from_row)
                .collect::<Vec<_>>()
        };
        let d = decide(
            &clerk,
            person,
            "phone",
            &subject,
            tongban_store::now_millis() + 1,
            &grants(store.clone()).await,
        );
        assert_eq!(d.decision, Decision::Mask, "requested, not yet approved");
        // The requester cannot approve its own request; the provider (the data bureau) can.
        assert!(
            decide_stored(store.as_ref(), &catalogue, &clerk, &g.id, true, "")
                .await
                .is_err()
        );
        decide_stored(store.as_ref(), &catalogue, &admin, &g.id, true, "ok")
            .await
            .unwrap();
        let d = decide(
            &clerk,
            person,
            "phone",
            &subject,
            tongban_store::now_millis() + 1,
            &grants(store.clone()).await,
        );
        assert_eq!(
            d.decision,
            Decision::Show {
                grant: Some(g.id.clone())
            },
            "{d:?} {:?}",
            grants(store.clone()).await
        );
        revoke_stored(
            store.as_ref(),
            &catalogue,
            &admin,
            &g.id,
            "purpose fulfilled",
        )
        .await
        .unwrap();
        let d = decide(
            &clerk,
            person,
            "phone",
            &subject,
            tongban_store::now_millis() + 1,
            &grants(store.clone()).await,
        );
        assert_eq!(d.decision, Decision::Mask, "revoked");
        let stored = store.grant(&g.id).await.unwrap().unwrap();
        assert_eq!(
            (stored.status.as_str(), stored.reason.as_deref()),
            ("revoked", Some("purpose fulfilled"))
        );
    }
}
