//! What scale_up changes, in the emulator: RDS instances, and Application Auto Scaling floors.

use aws_sdk_applicationautoscaling::types::ServiceNamespace;

use shared::ecs::ServiceRef;

/// A new postgres instance of this class; returns its id.
pub async fn create_db(rds: &aws_sdk_rds::Client, class: &str) -> String {
    let id = shared::testing::unique("db").to_lowercase().replace('_', "-");
    rds.create_db_instance()
        .db_instance_identifier(&id)
        .db_instance_class(class)
        .engine("postgres")
        .allocated_storage(20)
        .master_username("admin")
        .master_user_password("not-a-real-password")
        .send()
        .await
        .expect("CreateDBInstance");
    id
}

/// The instance's class as RDS holds it.
pub async fn db_class(rds: &aws_sdk_rds::Client, id: &str) -> String {
    let out = rds.describe_db_instances().db_instance_identifier(id).send().await.expect("DescribeDBInstances");
    out.db_instances()[0].db_instance_class().unwrap_or_default().to_owned()
}

/// The ECS service's scalable target: (min, max) capacity.
pub async fn scalable_capacity(autoscaling: &aws_sdk_applicationautoscaling::Client, api: &ServiceRef) -> (i32, i32) {
    let out = autoscaling
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_ids(format!("service/{}/{}", api.cluster, api.service))
        .send()
        .await
        .expect("DescribeScalableTargets");
    let target = &out.scalable_targets()[0];
    (target.min_capacity(), target.max_capacity())
}
