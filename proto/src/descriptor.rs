//! The descriptor pool of our Mesos `.proto` files, compiled in at build time.

use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, MessageDescriptor};

static DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/mesos_descriptor.bin"));

/// All message and enum descriptors of `mesos.v1`, `mesos.v1.scheduler` and `mesos.v1.executor`.
pub fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(DESCRIPTOR_SET).expect("the bundled descriptor set is valid"))
}

/// The descriptor of a generated message type.
pub fn message_descriptor<M: prost::Name>() -> MessageDescriptor {
    let name = M::full_name();
    pool().get_message_by_name(&name).unwrap_or_else(|| panic!("{name} is generated from the bundled descriptor set"))
}
