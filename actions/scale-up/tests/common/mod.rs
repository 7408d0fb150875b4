//! RDS instances in moto, which both test files scale.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use shared::testing::unique;

pub async fn create_db(rds: &aws_sdk_rds::Client, class: &str) -> String {
    let id = unique("db").to_lowercase().replace('_', "-");
    rds.create_db_instance()
        .db_instance_identifier(&id)
        .db_instance_class(class)
        .engine("postgres")
        .allocated_storage(20)
        .master_username("admin")
        .master_user_password("not-a-real-password")
        .send()
        .await
        .unwrap();
    id
}

pub async fn db_class(rds: &aws_sdk_rds::Client, id: &str) -> String {
    let out = rds.describe_db_instances().db_instance_identifier(id).send().await.unwrap();
    out.db_instances()[0].db_instance_class().unwrap().to_owned()
}
