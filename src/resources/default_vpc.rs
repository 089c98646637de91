//! `default_vpc`: the default VPC AWS creates in every region (F10). Never created by
//! the baseline: desired state says `ensure: absent`, and the planner removes it, with its
//! default subnets and internet gateway, only when nothing but AWS's own default pieces
//! is in it (anything the customer added is listed as what keeps it).

use super::{untaggable, Cx, Observation, Ownership, ResourceType, Scope};
use crate::aws::AwsError;
use crate::desired::names::OwnerTag;
use aws_sdk_ec2::types::{
    Filter, NatGatewayState, Subnet, TransitGatewayAttachmentState, VpcPeeringConnectionStateReasonCode,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultVpc {
    /// Observed: the VPC id.
    #[serde(default)]
    pub vpc_id: Option<String>,
    /// Observed: its default subnets.
    #[serde(default)]
    pub subnets: Option<BTreeSet<String>>,
    /// Observed: its internet gateways.
    #[serde(default)]
    pub internet_gateways: Option<BTreeSet<String>>,
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

impl DefaultVpc {
    /// Everything in the VPC besides AWS's own default pieces (its default subnets, its
    /// internet gateway, the main route table, the default network ACL and security group):
    /// whatever would make `DeleteVpc` fail, or whose removal would take something of the
    /// customer's with it. All of it is read before anything is deleted, so that a VPC is
    /// never left half removed.
    async fn users(cx: &Cx<'_>, vpc: &str, subnets: &[Subnet]) -> Result<Vec<String>, AwsError> {
        let ec2 = cx.session.ec2(cx.region);
        let by_vpc = || filter("vpc-id", vpc);
        let mut users: Vec<String> = subnets
            .iter()
            .filter(|s| !s.default_for_az().unwrap_or(false))
            .map(|s| format!("subnet {} (not a default subnet)", s.subnet_id().unwrap_or("?")))
            .collect();
        let mut token = None;
        loop {
            let out = cx
                .session
                .call(ec2.describe_network_interfaces().filters(by_vpc()).set_next_token(token).send())
                .await?;
            for eni in out.network_interfaces() {
                let id = eni.network_interface_id().unwrap_or("?");
                users.push(match eni.description().filter(|d| !d.is_empty()) {
                    Some(d) => format!("{id} ({d})"),
                    None => id.to_string(),
                });
            }
            token = out.next_token;
            if token.is_none() {
                break;
            }
        }
        let groups = cx.session.call(ec2.describe_security_groups().filters(by_vpc()).send()).await?;
        users.extend(
            groups
                .security_groups()
                .iter()
                .filter(|g| g.group_name() != Some("default"))
                .map(|g| format!("security group {}", g.group_id().unwrap_or("?"))),
        );
        let tables = cx.session.call(ec2.describe_route_tables().filters(by_vpc()).send()).await?;
        users.extend(
            tables
                .route_tables()
                .iter()
                .filter(|t| !t.associations().iter().any(|a| a.main().unwrap_or(false)))
                .map(|t| format!("route table {}", t.route_table_id().unwrap_or("?"))),
        );
        let acls = cx.session.call(ec2.describe_network_acls().filters(by_vpc()).send()).await?;
        users.extend(
            acls.network_acls()
                .iter()
                .filter(|a| !a.is_default().unwrap_or(false))
                .map(|a| format!("network ACL {}", a.network_acl_id().unwrap_or("?"))),
        );
        let endpoints = cx.session.call(ec2.describe_vpc_endpoints().filters(by_vpc()).send()).await?;
        users.extend(endpoints.vpc_endpoints().iter().map(|e| {
            format!("VPC endpoint {} ({})", e.vpc_endpoint_id().unwrap_or("?"), e.service_name().unwrap_or("?"))
        }));
        for side in ["requester-vpc-info.vpc-id", "accepter-vpc-info.vpc-id"] {
            let peerings =
                cx.session.call(ec2.describe_vpc_peering_connections().filters(filter(side, vpc)).send()).await?;
            users.extend(
                peerings
                    .vpc_peering_connections()
                    .iter()
                    .filter(|p| {
                        !matches!(
                            p.status().and_then(|s| s.code()),
                            Some(
                                VpcPeeringConnectionStateReasonCode::Deleted
                                    | VpcPeeringConnectionStateReasonCode::Rejected
                            )
                        )
                    })
                    .map(|p| format!("VPC peering {}", p.vpc_peering_connection_id().unwrap_or("?"))),
            );
        }
        let vgws =
            cx.session.call(ec2.describe_vpn_gateways().filters(filter("attachment.vpc-id", vpc)).send()).await?;
        users.extend(vgws.vpn_gateways().iter().map(|g| format!("VPN gateway {}", g.vpn_gateway_id().unwrap_or("?"))));
        let nats = cx.session.call(ec2.describe_nat_gateways().filter(by_vpc()).send()).await?;
        users.extend(
            nats.nat_gateways()
                .iter()
                .filter(|n| n.state() != Some(&NatGatewayState::Deleted))
                .map(|n| format!("NAT gateway {}", n.nat_gateway_id().unwrap_or("?"))),
        );
        let eigws = cx.session.call(ec2.describe_egress_only_internet_gateways().send()).await?;
        users.extend(
            eigws
                .egress_only_internet_gateways()
                .iter()
                .filter(|g| g.attachments().iter().any(|a| a.vpc_id() == Some(vpc)))
                .map(|g| {
                    format!("egress-only internet gateway {}", g.egress_only_internet_gateway_id().unwrap_or("?"))
                }),
        );
        let tgw = cx.session.call(ec2.describe_transit_gateway_vpc_attachments().filters(by_vpc()).send()).await?;
        users.extend(
            tgw.transit_gateway_vpc_attachments()
                .iter()
                .filter(|a| {
                    !matches!(
                        a.state(),
                        Some(TransitGatewayAttachmentState::Deleted | TransitGatewayAttachmentState::Deleting)
                    )
                })
                .map(|a| format!("transit gateway attachment {}", a.transit_gateway_attachment_id().unwrap_or("?"))),
        );
        Ok(users)
    }
}

impl ResourceType for DefaultVpc {
    const KIND: &'static str = "default_vpc";
    const DEFAULT_SCOPE: Scope = Scope::All;
    const TAGGABLE: bool = false;
    const OWNERSHIP: Ownership = Ownership::AwsDefault;

    fn name(&self) -> String {
        "default".into()
    }

    async fn observe(&self, cx: &Cx<'_>) -> Result<Observation<Self>, AwsError> {
        let ec2 = cx.session.ec2(cx.region);
        let vpcs = cx.session.call(ec2.describe_vpcs().filters(filter("is-default", "true")).send()).await?;
        let Some(vpc) = vpcs.vpcs().iter().find(|v| v.is_default().unwrap_or(false)).and_then(|v| v.vpc_id()) else {
            return Ok(Observation::Absent { quota: None });
        };
        let subnets = cx.session.call(ec2.describe_subnets().filters(filter("vpc-id", vpc)).send()).await?;
        let subnets = subnets.subnets();
        let igws =
            cx.session.call(ec2.describe_internet_gateways().filters(filter("attachment.vpc-id", vpc)).send()).await?;
        let state = DefaultVpc {
            vpc_id: Some(vpc.to_string()),
            // Only AWS's default subnets are ever removed with it; any other is a blocker.
            subnets: Some(
                subnets
                    .iter()
                    .filter(|s| s.default_for_az().unwrap_or(false))
                    .filter_map(|s| s.subnet_id().map(str::to_string))
                    .collect(),
            ),
            internet_gateways: Some(
                igws.internet_gateways().iter().filter_map(|g| g.internet_gateway_id().map(str::to_string)).collect(),
            ),
        };
        let in_use = Self::users(cx, vpc, subnets).await?;
        Ok(Observation::AwsDefault { state, in_use })
    }

    async fn create(&self, _cx: &Cx<'_>, _tag: OwnerTag) -> Result<(), AwsError> {
        Err(AwsError::new(
            "unsupported",
            "the default VPC is AWS's to create (ec2 create-default-vpc), not the baseline's",
        ))
    }

    async fn update(&self, _cx: &Cx<'_>, _observed: &Self) -> Result<(), AwsError> {
        Err(AwsError::new("unsupported", "the default VPC is never updated"))
    }

    /// Deletes the default VPC as observed: its subnets, then its internet gateways, then
    /// the VPC (its default security group, main route table and default network ACL go
    /// with it). Called with the observed state.
    async fn delete(&self, cx: &Cx<'_>) -> Result<(), AwsError> {
        let Some(vpc) = &self.vpc_id else {
            return Err(AwsError::new("internal", "default VPC to delete has no id"));
        };
        let ec2 = cx.session.ec2(cx.region);
        for s in self.subnets.iter().flatten() {
            cx.session.call(ec2.delete_subnet().subnet_id(s).send()).await?;
        }
        for g in self.internet_gateways.iter().flatten() {
            cx.session.call(ec2.detach_internet_gateway().internet_gateway_id(g).vpc_id(vpc).send()).await?;
            cx.session.call(ec2.delete_internet_gateway().internet_gateway_id(g).send()).await?;
        }
        cx.session.call(ec2.delete_vpc().vpc_id(vpc).send()).await?;
        Ok(())
    }

    async fn retag(&self, _cx: &Cx<'_>, _tag: OwnerTag) -> Result<(), AwsError> {
        Err(untaggable(Self::KIND))
    }
}
